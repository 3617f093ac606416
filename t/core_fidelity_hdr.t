#!/usr/bin/perl
# Real-world fidelity, the second part (issue 10): hdr=keep carries the
# HDR10 mastering display and content light levels, whether the input
# holds them in its container or only in its HEVC SEI; Dolby Vision
# profile 5 is refused (copied into mkv only); track languages and titles
# are kept; covers go into mkv (an attachment) and video mp4 (covr).
# Every expected value is ffprobe's reading of the input.  Media made
# here with the ffmpeg CLI and build/vconv-sidedata (the side data the
# CLI cannot write); through build/vconv-cli: the core.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Digest::MD5 qw(md5_hex);
use JSON::PP qw(decode_json);
use Test::More;
use VconvMedia ();
use VconvHostile qw(ff);

my $dir = tempdir('vconv-fh-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $build = $ENV{VCONV_BUILD} // 'build';
my $sidedata = "$build/vconv-sidedata";

plan skip_all => "$sidedata not built" unless -x $sidedata;

sub cli { VconvMedia::cli(@_) }
sub probe { VconvMedia::probe(@_) // {} }
sub vstream { VconvMedia::video_stream(probe(@_)) // {} }

sub convert {
    my ($in, $out, @opt) = @_;
    unlink $out;
    my ($rc, $j, $raw) = cli($in, $out, @opt);
    ok($rc == 0 && $j && $j->{ok}, "$in -> @opt") or diag($raw);
    return $j;
}

sub refuse {
    my ($in, $out, $code, $re, @opt) = @_;
    unlink $out;
    my ($rc, $j, $raw) = cli($in, $out, @opt);
    is($j && $j->{error} && $j->{error}{code}, $code, "$in -> @opt: $code")
        or diag($raw);
    like($j && $j->{error} && $j->{error}{message} // '', $re,
         '... and the message names it');
    ok(!-e $out, '... and no output left');
}

sub inject {
    my ($in, $out, @sd) = @_;
    system($sidedata, $in, $out, @sd) == 0 or die "vconv-sidedata @sd";
    return $out;
}

sub slurp { VconvHostile::slurp($_[0]) }

# "34000/50000" or 0.68 -> a number
sub num {
    my ($v) = @_;
    return undef unless defined $v;
    return $1 / $2 if $v =~ m{^(-?[\d.]+)/([\d.]+)$} && $2 != 0;
    return $v + 0;
}

my @md_keys = qw(red_x red_y green_x green_y blue_x blue_y white_point_x
                 white_point_y min_luminance max_luminance);

# side data of a stream, or of the first video frame: { type => {..} }
sub side_data {
    my ($list) = @_;
    my %sd;
    for my $s (@{ $list // [] }) {
        $sd{$s->{side_data_type}} = $s;
    }
    return \%sd;
}

sub stream_sd { side_data(vstream($_[0])->{side_data_list}) }

sub frame_sd {
    my ($file) = @_;
    my $cmd = "ffprobe -v error -select_streams v:0 -read_intervals '%+#1'"
              . " -show_frames -of json '$file'";
    my $json = `$cmd`;
    my $p = eval { decode_json($json) } // {};
    return side_data(($p->{frames} // [])->[0]{side_data_list});
}

my $MD = 'Mastering display metadata';
my $CLL = 'Content light level metadata';

# the mastering display and light levels are those of the reference
sub same_hdr {
    my ($got, $want, $name) = @_;
    my @diff;
    for my $k (@md_keys) {
        my ($g, $w) = (num($got->{$MD}{$k}), num($want->{$MD}{$k}));
        push @diff, "$k " . ($got->{$MD}{$k} // 'none') . ' != '
                    . ($want->{$MD}{$k} // 'none')
            if !defined $g || !defined $w
               || abs($g - $w) > 1e-4 * (abs($w) > 1 ? abs($w) : 1);
    }
    for my $k (qw(max_content max_average)) {
        push @diff, "$k " . ($got->{$CLL}{$k} // 'none') . ' != '
                    . ($want->{$CLL}{$k} // 'none')
            if ($got->{$CLL}{$k} // -1) != ($want->{$CLL}{$k} // -2);
    }
    ok(!@diff, $name) or diag(join '; ', @diff);
}

sub frames {
    my ($file, $sel) = @_;
    my $p = probe($file, '-count_frames', '-select_streams', $sel);
    return $p->{streams}[0]{nb_read_frames} // 0;
}

# --- media --------------------------------------------------------------
# HDR10 HEVC whose mastering display and light levels are only in its SEI
# (libav 5.1's muxers write none from the CLI), with sound interleaved:
# the packets read to find the first frame must all reach the output
my $sei_mp4 = "$dir/sei.mp4";
ff('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=2',
   '-f', 'lavfi', '-i', 'sine=d=2', '-vf', 'format=yuv420p10le',
   '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params',
   'log-level=none:hdr10=1:master-display=G(8500,39850)B(6550,2300)'
   . 'R(35400,14600)WP(15635,16450)L(40000000,50):max-cll=1000,400',
   '-color_primaries', 'bt2020', '-color_trc', 'smpte2084',
   '-colorspace', 'bt2020nc', '-c:a', 'aac', $sei_mp4);
my $sei_mkv = "$dir/sei.mkv";
ff('-i', $sei_mp4, '-c', 'copy', $sei_mkv);

# the same picture, its HDR10 values in the container only (mdcv/clli)
my $plain = "$dir/plain.mp4";
ff('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1',
   '-vf', 'format=yuv420p10le', '-c:v', 'libx265', '-preset', 'ultrafast',
   '-x265-params', 'log-level=none', '-color_primaries', 'bt2020',
   '-color_trc', 'smpte2084', '-colorspace', 'bt2020nc', $plain);
my $box_mp4 = inject($plain, "$dir/box.mp4",
    'mdcv=34000,16000,13250,34500,7500,3000,15635,16450,10000000,1',
    'cll=4000,600');

# Dolby Vision: profile 5 (no compatible base layer) and 8.1 (HDR10 base)
my $dv5_mkv = inject($sei_mp4, "$dir/dv5.mkv", 'dovi=5,6,0');
my $dv5_mp4 = inject($sei_mp4, "$dir/dv5.mp4", 'dovi=5,6,0');
my $dv81 = inject($sei_mp4, "$dir/dv81.mp4", 'dovi=8,6,1');

{
    my $sd = stream_sd($sei_mp4);
    ok(!$sd->{$MD} && !$sd->{$CLL},
       'the SEI input has no HDR10 side data in its container');
    my $f = frame_sd($sei_mp4);
    is(num($f->{$MD}{max_luminance}), 4000,
       '... its first frame has (4000 cd/m2)');
    is(stream_sd($box_mp4)->{$CLL}{max_content}, 4000,
       'the container input has clli 4000 in its container');
    is(stream_sd($dv5_mkv)->{'DOVI configuration record'}{dv_profile}, 5,
       'the Dolby Vision input says profile 5');
}

# --- hdr=keep: mastering display and light levels from the SEI ----------
my $want = frame_sd($sei_mp4);
my $vframes = frames($sei_mp4, 'v:0');
my $aframes = frames($sei_mp4, 'a:0');
for my $in ($sei_mp4, $sei_mkv) {
    for my $fmt (qw(mp4 mkv)) {
        my $out = "$dir/keep.$fmt";
        my $name = ($in =~ /(\w+\.\w+)$/)[0] . " -> $fmt";
        convert($in, $out, "format=$fmt", 'vcodec=hevc', 'hdr=keep');
        same_hdr(stream_sd($out), $want,
                 "$name: the container's mastering display and light levels"
                 . ' are the input SEI\'s');
        same_hdr(frame_sd($out), $want,
                 "$name: so are the output's own SEI");
        is(frames($out, 'v:0'), $vframes,
           "$name: every video frame ($vframes) kept");
        # AAC again: its priming may add a frame or two, not lose any
        my $n = frames($out, 'a:0');
        ok($n >= $aframes && $n <= $aframes + 3,
           "$name: the sound kept ($n AAC frames of $aframes)");
    }
}

{
    # a start past the first frame: the peeked packets are dropped, the
    # values are still the first frame's
    my $out = "$dir/late.mkv";
    convert($sei_mp4, $out, 'format=mkv', 'vcodec=hevc', 'hdr=keep',
            'start=1');
    same_hdr(stream_sd($out), $want, 'start=1: the values kept');
    my $n = frames($out, 'v:0');
    ok($n >= 24 && $n <= 26, "start=1: the last second's frames ($n)");
}

# --- hdr=keep: from the container ---------------------------------------
{
    my $box = stream_sd($box_mp4);
    for my $fmt (qw(mp4 mkv)) {
        my $out = "$dir/o_box.$fmt";
        convert($box_mp4, $out, "format=$fmt", 'vcodec=hevc', 'hdr=keep');
        same_hdr(stream_sd($out), $box,
                 "container values -> $fmt: kept in the container");
        same_hdr(frame_sd($out), $box,
                 "container values -> $fmt: written in the SEI too");
    }
    # a copy keeps them too
    my $out = "$dir/copy.mkv";
    convert($box_mp4, $out, 'format=mkv', 'vcodec=copy');
    same_hdr(stream_sd($out), $box, 'vcodec=copy -> mkv: kept');
}

# --- AV1: the container carries them (libaom in libav 5.1 writes none) --
{
    my $out = "$dir/keep_av1.mkv";
    convert($sei_mkv, $out, 'format=mkv', 'vcodec=av1', 'hdr=keep',
            'duration=0.5');
    is(vstream($out)->{codec_name}, 'av1', 'hdr=keep av1: AV1');
    same_hdr(stream_sd($out), $want,
             'hdr=keep av1 -> mkv: the SEI\'s values in MasteringMetadata');
}

# --- tone mapped: no HDR10 side data left on an SDR output --------------
{
    my $out = "$dir/sdr.mp4";
    convert($sei_mp4, $out, 'format=mp4');
    my $sd = stream_sd($out);
    ok(!$sd->{$MD} && !$sd->{$CLL},
       'tone mapped to SDR: no mastering display or light levels');
    is(vstream($out)->{color_transfer}, 'bt709', '... and tagged bt709');
}

# --- Dolby Vision profile 5 ---------------------------------------------
for my $t ([$dv5_mkv, 'mp4'], [$dv5_mp4, 'mp4'], [$dv5_mkv, 'jpg'],
           [$dv5_mkv, 'mkv', 'vcodec=hevc', 'hdr=keep'])
{
    my ($in, $fmt, @opt) = @$t;
    refuse($in, "$dir/dv5out.$fmt", 'unsupported_pixel_format',
           qr/Dolby Vision profile 5/, "format=$fmt", @opt);
}
refuse($dv5_mkv, "$dir/dv5c.mp4", 'unsupported_pixel_format',
       qr/Dolby Vision profile 5.*mkv only/, 'format=mp4', 'vcodec=copy');
{
    my $out = "$dir/dv5c.mkv";
    convert($dv5_mp4, $out, 'format=mkv', 'vcodec=copy');
    my $d = stream_sd($out)->{'DOVI configuration record'} // {};
    is("$d->{dv_profile}/$d->{dv_bl_signal_compatibility_id}", '5/0',
       'profile 5 copied into mkv keeps its configuration record');
    $out = "$dir/dv5.m4a";
    convert($dv5_mkv, $out, 'format=m4a');
    ok(-s $out, 'profile 5: its sound alone converts');
    $out = "$dir/dv81out.mp4";
    convert($dv81, $out, 'format=mp4');
    is(vstream($out)->{color_transfer}, 'bt709',
       'profile 8.1 (HDR10 base layer): converts, tone mapped');
}

# --- track languages and titles -----------------------------------------
my $lang = "$dir/lang.mkv";
ff('-f', 'lavfi', '-i', 'testsrc2=size=160x120:duration=1', '-f', 'lavfi',
   '-i', 'sine=d=1', '-map', '0', '-map', '1', '-c:v', 'libx264',
   '-c:a', 'aac', '-metadata:s:v:0', 'language=eng',
   '-metadata:s:v:0', 'title=Main picture', '-metadata:s:a:0',
   'language=jpn', '-metadata:s:a:0', 'title=Japanese dub', $lang);
{
    my $p = probe($lang);
    my ($vi, $ai) = (VconvMedia::video_stream($p)->{tags},
                     VconvMedia::audio_stream($p)->{tags});
    for my $fmt (qw(mp4 mkv webm mov)) {
        my $out = "$dir/langout.$fmt";
        convert($lang, $out, "format=$fmt");
        my $o = probe($out);
        my ($v, $a) = (VconvMedia::video_stream($o)->{tags} // {},
                       VconvMedia::audio_stream($o)->{tags} // {});
        is("$v->{language} $a->{language}",
           "$vi->{language} $ai->{language}", "$fmt: track languages kept");
        my $title = $fmt =~ /^(?:mp4|mov)$/ ? 'handler_name' : 'title';
        is("$v->{$title} / $a->{$title}", "$vi->{title} / $ai->{title}",
           "$fmt: track titles kept ($title)");
    }
    my $out = "$dir/strip.mp4";
    convert($lang, $out, 'format=mp4', 'metadata=strip');
    my $a = VconvMedia::audio_stream(probe($out))->{tags} // {};
    is($a->{language}, $ai->{language}, 'metadata=strip: the language kept');
    is($a->{handler_name}, 'SoundHandler',
       '... the title not: the muxer\'s own handler name');
    $out = "$dir/langout.m4a";
    convert($lang, $out, 'format=m4a');
    is((VconvMedia::audio_stream(probe($out))->{tags} // {})->{language},
       $ai->{language}, 'm4a: the language kept');
}

# --- covers -------------------------------------------------------------
my $cover = "$dir/cover.jpg";
ff('-f', 'lavfi', '-i', 'testsrc2=size=200x200', '-frames:v', '1', $cover);
my $cover_md5 = md5_hex(slurp($cover));
my $mp3 = "$dir/tagged.mp3";
ff('-f', 'lavfi', '-i', 'sine=d=2', '-i', $cover, '-map', '0', '-map', '1',
   '-c:a', 'libmp3lame', '-c:v', 'copy', '-disposition:v', 'attached_pic',
   '-metadata', 'title=Song', '-metadata', 'artist=Singer', $mp3);
my $vc = "$dir/covered.mp4";
ff('-f', 'lavfi', '-i', 'testsrc2=size=160x120:duration=1', '-f', 'lavfi',
   '-i', 'sine=d=1', '-i', $cover, '-map', '0', '-map', '1', '-map', '2',
   '-c:v:0', 'libx264', '-c:a', 'aac', '-c:v:1', 'copy',
   '-disposition:v:1', 'attached_pic', $vc);

# the output's cover: its stream and its bytes
sub cover_of {
    my ($file) = @_;
    my $p = probe($file);
    my ($s) = grep { ($_->{disposition}{attached_pic} // 0) == 1 }
              @{ $p->{streams} // [] };
    return (undef, '') unless $s;
    my $jpg = "$dir/got.jpg";
    unlink $jpg;
    system("ffmpeg -nostdin -v error -y -i '$file' -map 0:$s->{index} "
           . "-c copy -f image2 '$jpg' 2>/dev/null");
    return ($s, -s $jpg ? md5_hex(slurp($jpg)) : '');
}

{
    my $out = "$dir/song.mkv";
    convert($mp3, $out, 'format=mkv');
    my $p = probe($out);
    ok(!VconvMedia::video_stream($p)
       || VconvMedia::video_stream($p)->{disposition}{attached_pic},
       'mp3 -> mkv: sound only, no video track made of the cover');
    is($p->{format}{tags}{title}, 'Song', 'mp3 -> mkv: the title kept');
    my ($s, $md5) = cover_of($out);
    is($s && "$s->{tags}{filename} $s->{tags}{mimetype}",
       'cover.jpg image/jpeg', 'mp3 -> mkv: the cover an attachment');
    is($md5, $cover_md5, '... the same bytes');

    for my $fmt (qw(mp4 mkv)) {
        $out = "$dir/o_covered.$fmt";
        convert($vc, $out, "format=$fmt");
        ($s, $md5) = cover_of($out);
        is($md5, $cover_md5, "video mp4 with a cover -> $fmt: cover kept");
        is(VconvMedia::video_stream(probe($out))->{codec_name}, 'h264',
           "... the video still the first video stream");
    }

    $out = "$dir/o_covered.webm";
    convert($vc, $out, 'format=webm');
    ($s) = cover_of($out);
    ok(!$s, 'webm: no place for a cover, none written');

    $out = "$dir/stripped.mkv";
    convert($mp3, $out, 'format=mkv', 'metadata=strip');
    ($s) = cover_of($out);
    ok(!$s, 'metadata=strip: no cover');

    my ($rc, $j) = cli($mp3, "$dir/song.mp4", 'format=mp4');
    is($j && $j->{error}{code}, 'no_video_stream',
       'mp3 -> mp4 is still no_video_stream (m4a is the format)');
}

done_testing();
