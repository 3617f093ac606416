#!/usr/bin/perl
# Real-world fidelity (issue 10, and issue 23's last-frame hold): HDR tone
# mapped to BT.709 SDR (its mean luma next to the ffmpeg CLI's own
# zscale+tonemap), hdr=keep, hvc1, animated WebP, tags and covers across
# containers, location stripped, chapters, VFR and GIF timing to the last
# frame, one-frame inputs, a picture past the end, quality for jpg/webp.
# Media made here with the ffmpeg CLI; through build/vconv-cli: the core.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvMedia ();
use VconvHostile qw(ff);

my $dir = tempdir('vconv-fi-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub cli { VconvMedia::cli(@_) }
sub probe { VconvMedia::probe(@_) // {} }
sub vstream { VconvMedia::video_stream(probe(@_)) // {} }
sub astream { VconvMedia::audio_stream(probe(@_)) // {} }

sub near {
    my ($got, $want, $tol, $name) = @_;
    ok(defined $got && abs($got - $want) <= $tol,
       "$name: " . ($got // 'undef') . " ~ $want");
}

sub convert {
    my ($in, $out, @opt) = @_;
    unlink $out;
    my ($rc, $j, $raw) = cli($in, $out, @opt);
    ok($rc == 0 && $j && $j->{ok}, "$in -> @opt") or diag($raw);
    return $j;
}

# the first frame's mean luma (signalstats YAVG), after an optional filter
sub yavg {
    my ($file, $vf) = @_;
    $vf = $vf ? "$vf," : '';
    my $out = `ffmpeg -nostdin -hide_banner -nostats -i '$file' -vf '${vf}signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-' -frames:v 1 -f null - 2>/dev/null`;
    return $out =~ /YAVG=([\d.]+)/ ? $1 : undef;
}

# counts of a RIFF chunk name in a file (ANMF: WebP animation frames)
sub chunks {
    my ($file, $name) = @_;
    open my $fh, '<:raw', $file or return 0;
    local $/;
    my $b = <$fh>;
    my $n = () = $b =~ /\Q$name\E/g;
    return $n;
}

# --- media --------------------------------------------------------------
my $src = 'testsrc2=size=320x240:rate=25:duration=2';
my $hdr10 = "$dir/hdr10.mp4";
ff('-f', 'lavfi', '-i', $src, '-vf',
   'zscale=tin=bt709:min=bt709:pin=bt709:t=smpte2084:m=bt2020nc'
   . ':p=bt2020:npl=1000,format=yuv420p10le',
   '-c:v', 'libx265', '-x265-params',
   'log-level=none:colorprim=bt2020:transfer=smpte2084'
   . ':colormatrix=bt2020nc:hdr10=1'
   . ':master-display=G(13250,34500)B(7500,3000)R(34000,16000)'
   . 'WP(15635,16450)L(10000000,1):max-cll=1000,400', $hdr10);
my $hlg = "$dir/hlg.mp4";
ff('-f', 'lavfi', '-i', $src, '-vf',
   'zscale=tin=bt709:min=bt709:pin=bt709:t=arib-std-b67:m=bt2020nc'
   . ':p=bt2020:npl=1000,format=yuv420p10le',
   '-c:v', 'libx265', '-x265-params',
   'log-level=none:colorprim=bt2020:transfer=arib-std-b67'
   . ':colormatrix=bt2020nc', $hlg);

# low, irregular frame rate: 15 frames over 4 s, the last at 3.96 s
my $vfr = "$dir/vfr.webm";
ff('-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25:duration=10',
   '-vf', "setpts='(N*0.28+0.03*mod(N\\,4))/TB'", '-frames:v', '15',
   '-fps_mode', 'vfr', '-c:v', 'libvpx-vp9', '-deadline', 'realtime',
   $vfr);

# 9 frames at 10 fps, the last held 2 s: 2.8 s in all
my $gif = "$dir/hold.gif";
ff('-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10:duration=0.9',
   '-final_delay', '200', $gif);

my $one = "$dir/one.mov";
ff('-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30000/1001',
   '-frames:v', '1', '-c:v', 'dnxhd', '-profile:v', 'dnxhr_lb',
   '-pix_fmt', 'yuv422p', $one);

my $cover = "$dir/cover.jpg";
ff('-f', 'lavfi', '-i', 'testsrc2=size=200x200', '-frames:v', '1', $cover);
my %tags = (title => 'Test Title', artist => 'Test Artist',
            album => 'Test Album', album_artist => 'Album Artist',
            date => '2021', genre => 'Rock', comment => 'A comment');
my @meta = map { ('-metadata', "$_=$tags{$_}") } sort keys %tags;
my $mp3 = "$dir/tagged.mp3";
ff('-f', 'lavfi', '-i', 'sine=d=3', '-i', $cover, '-map', '0', '-map', '1',
   '-c:a', 'libmp3lame', '-c:v', 'copy', '-disposition:v', 'attached_pic',
   '-id3v2_version', '3', @meta, '-metadata', 'track=3/12', $mp3);
my $flac = "$dir/tagged.flac";
ff('-f', 'lavfi', '-i', 'sine=d=3', '-i', $cover, '-map', '0', '-map', '1',
   '-c:a', 'flac', '-c:v', 'copy', '-disposition:v', 'attached_pic',
   @meta, '-metadata', 'track=3/12', $flac);

my $gps = "$dir/gps.mov";
ff('-f', 'lavfi', '-i', 'testsrc2=size=160x120:duration=1', '-c:v',
   'libx264', '-metadata', 'title=Trip', '-metadata',
   'location=+48.8584+002.2945/', $gps);

my $chmeta = "$dir/chapters.txt";
VconvHostile::spew($chmeta, ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\n"
    . "START=0\nEND=1000\ntitle=One\n[CHAPTER]\nTIMEBASE=1/1000\n"
    . "START=1000\nEND=3000\ntitle=Two\n");
my $chap = "$dir/chapters.mkv";
ff('-f', 'lavfi', '-i', 'testsrc2=size=160x120:duration=3', '-f', 'lavfi',
   '-i', 'sine=d=3', '-i', $chmeta, '-map', '0', '-map', '1',
   '-map_chapters', '2', '-c:v', 'libx264', '-c:a', 'aac', $chap);

# --- 1. HDR to SDR ------------------------------------------------------
my $tm = 'zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,'
         . 'tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,'
         . 'format=yuv420p';

for my $t (['HDR10 (PQ)', $hdr10], ['HLG', $hlg]) {
    my ($name, $in) = @$t;
    my $out = "$dir/sdr.mp4";
    convert($in, $out, 'format=mp4');
    my $v = vstream($out);
    is("$v->{color_primaries}/$v->{color_transfer}/$v->{color_space}",
       'bt709/bt709/bt709', "$name -> mp4: tagged bt709");
    is($v->{pix_fmt}, 'yuv420p', "$name -> mp4: 8-bit 4:2:0");

    my $ours = yavg($out);
    my $ref = yavg($in, $tm);
    ok(defined $ours && defined $ref && abs($ours - $ref) <= 0.03 * $ref,
       "$name -> mp4: mean luma $ours within 3 % of the CLI's tone "
       . "mapping ($ref)");
}

for my $fmt (qw(png gif)) {
    my $out = "$dir/sdr.$fmt";
    convert($hdr10, $out, "format=$fmt");
    my $ours = yavg($out);
    my $ref = yavg($hdr10, $tm);
    ok(defined $ours && abs($ours - $ref) <= 0.03 * $ref,
       "HDR10 -> $fmt: mean luma " . ($ours // 'undef')
       . " near the CLI's ($ref)");
}

{
    my $out = "$dir/keep.mkv";
    convert($hdr10, $out, 'format=mkv', 'vcodec=hevc', 'hdr=keep');
    my $v = vstream($out);
    is("$v->{pix_fmt} $v->{color_primaries}/$v->{color_transfer}",
       'yuv420p10le bt2020/smpte2084', 'hdr=keep: 10-bit, PQ, BT.2020');

    my ($rc, $j) = cli($hdr10, "$dir/x.mp4", 'format=mp4', 'hdr=keep');
    is($j && $j->{error}{code}, 'conflicting_options',
       'hdr=keep with H.264: conflicting_options');
}

# --- 5. hvc1 ------------------------------------------------------------
for my $fmt (qw(mp4 mov)) {
    my $out = "$dir/hevc.$fmt";
    convert($vfr, $out, "format=$fmt", 'vcodec=hevc');
    is(vstream($out)->{codec_tag_string}, 'hvc1', "HEVC in $fmt: hvc1");
}

{
    my $out = "$dir/keep.mp4";
    convert($hdr10, $out, 'format=mp4', 'vcodec=hevc', 'hdr=keep');
    my $v = vstream($out);
    is("$v->{codec_tag_string} $v->{color_transfer}", 'hvc1 smpte2084',
       'hdr=keep in mp4: hvc1, PQ');
}

# --- 2. animated WebP ---------------------------------------------------
for my $t (['a VFR clip, duration=2', $vfr, 'duration=2'],
           ['an animated GIF', $gif])
{
    my ($name, $in, @opt) = @$t;
    my $out = "$dir/anim.webp";
    convert($in, $out, 'format=webp', @opt);
    cmp_ok(chunks($out, 'ANMF'), '>', 1, "$name -> webp: animated");
}

# --- 7. short inputs ----------------------------------------------------
for my $fmt (qw(jpg png webp)) {
    my $out = "$dir/one.$fmt";
    convert($one, $out, "format=$fmt");
    ok(-s $out, "a one-frame MOV -> $fmt: a picture");
}

{
    my $out = "$dir/late.png";
    convert($vfr, $out, 'format=png', 'start=30');
    my $ref = "$dir/last.png";
    ff('-sseof', '-0.1', '-i', $vfr, '-update', '1', $ref);
    my $p = `ffmpeg -nostdin -hide_banner -i '$out' -i '$ref' -lavfi psnr -f null - 2>&1`;
    my ($db) = $p =~ /average:([\d.]+|inf)/;
    ok(defined $db && ($db eq 'inf' || $db > 35),
       'png past the end: the last frame (PSNR ' . ($db // 'undef') . ')');
}

# --- 4. timing ----------------------------------------------------------
for my $fmt (qw(mp4 webm mkv)) {
    my $out = "$dir/vfr-out.$fmt";
    convert($vfr, $out, "format=$fmt");
    my $p = probe($out);
    my $d = vstream($out)->{duration} // $p->{format}{duration};
    near($d, 4.0, 0.05, "VFR -> $fmt: lasts to its last frame's end");
    is(VconvMedia::frame_count($out), 15, "VFR -> $fmt: no frame added");
}

# the issue's case: 5 frames over 4.24 s, the last at 4.2 s (read 3.0 s)
{
    my $sparse = "$dir/sparse.webm";
    ff('-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25:duration=10',
       '-vf', "setpts='if(eq(N,0),0,if(eq(N,1),0.7,if(eq(N,2),1.5,"
              . "if(eq(N,3),2.9,4.2))))/TB'", '-frames:v', '5',
       '-fps_mode', 'vfr', '-c:v', 'libvpx', '-b:v', '200k', $sparse);
    my $out = "$dir/sparse.mp4";
    convert($sparse, $out, 'format=mp4');
    near(vstream($out)->{duration}, 4.24, 0.05,
         'sparse VFR -> mp4: the track lasts to its last frame');
}

for my $fmt (qw(mp4 mov webm gif)) {
    my $out = "$dir/hold-out.$fmt";
    convert($gif, $out, "format=$fmt");
    my $p = probe($out);
    my $d = $fmt =~ /^(mp4|mov)$/ ? vstream($out)->{duration}
                                   : $p->{format}{duration};
    near($d, 2.8, 0.1, "GIF held 2 s -> $fmt: the hold kept");
}

{
    my $out = "$dir/trim.mp4";
    convert($vfr, $out, 'format=mp4', 'start=0.5', 'duration=2',
            'fps=10');
    near(vstream($out)->{duration}, 2.0, 0.05, 'trim with fps: exact');
}

# --- 9. a mid-stream size change: the old graph is drained -------------
{
    my $sc = VconvHostile::ts_size_change($dir, 'change.ts', '320x240',
                                          '640x480', duration1 => 2,
                                          duration2 => 2);
    my $out = "$dir/change.webm";
    convert($sc, $out, 'format=webm', 'fps=10');
    near(VconvMedia::frame_count($out), 40, 1,
         'size change at 2 s -> webm fps=10: no frame lost or added');
    near(probe($out)->{format}{duration}, 4.0, 0.1,
         'size change -> webm: 4 s');

    $out = "$dir/change.gif";
    convert($sc, $out, 'format=gif');
    near(probe($out)->{format}{duration}, 4.0, 0.1,
         'size change -> gif: 4 s (the first palette\'s frames kept)');
}

# --- 9. a bound on video frames, its own code --------------------------
{
    my ($rc, $j) = cli('--max-frames', '10', $vfr, "$dir/fl.mp4",
                       'format=mp4');
    is($j && $j->{error}{code}, 'frame_limit',
       'more frames decoded than allowed: frame_limit');
    ok(!-e "$dir/fl.mp4", '... and no output left');
    # a picture near the end decodes them all but encodes one
    ($rc, $j) = cli('--max-frames', '10', $vfr, "$dir/fl.jpg", 'format=jpg',
                    'start=3.9');
    is($j && $j->{error}{code}, 'frame_limit',
       'more frames decoded than allowed for one picture: frame_limit');
    # 9 frames in, the 2 s hold repeated at the GIF's rate: 34 out
    ($rc, $j) = cli('--max-frames', '20', $gif, "$dir/fl.gif", 'format=gif');
    is($j && $j->{error}{code}, 'frame_limit',
       'more frames encoded than allowed: frame_limit');
    ($rc, $j) = cli('--max-frames', '40', $gif, "$dir/fl.gif", 'format=gif');
    ok($j && $j->{ok}, 'within the bound: converts');
}

# --- 3. metadata --------------------------------------------------------
for my $t ([$mp3, 'm4a'], [$flac, 'mp3'], [$mp3, 'flac'], [$flac, 'ogg'],
           [$mp3, 'opus'])
{
    my ($in, $fmt) = @$t;
    my $out = "$dir/tags.$fmt";
    convert($in, $out, "format=$fmt");
    my $p = probe($out);
    my %got = %{ $p->{format}{tags} // {} };
    # Ogg keeps its comments with the stream
    %got = (%got, %{ astream($out)->{tags} // {} });
    my %lc = map { lc($_) => $got{$_} } keys %got;
    is_deeply({ map { $_ => $lc{$_} } keys %tags }, \%tags,
              "$in -> $fmt: tags equal");
    like($lc{track} // '', qr{^3(/12)?$}, "$in -> $fmt: track");
    ok((grep { ($_->{disposition}{attached_pic} // 0) == 1 }
        @{ $p->{streams} }), "$in -> $fmt: the cover is there");
}

{
    my $out = "$dir/strip.m4a";
    convert($mp3, $out, 'format=m4a', 'metadata=strip');
    my $p = probe($out);
    ok(!($p->{format}{tags} // {})->{title}
       && !(grep { $_->{codec_type} eq 'video' } @{ $p->{streams} }),
       'metadata=strip: no tags, no cover');

    $out = "$dir/gps.mp4";
    convert($gps, $out, 'format=mp4');
    my $t = probe($out)->{format}{tags} // {};
    ok($t->{title} && !(grep { /location/i } keys %$t),
       'phone clip: title kept, location stripped by default');

    convert($gps, $out, 'format=mp4', 'metadata=keep');
    $t = probe($out)->{format}{tags} // {};
    ok((grep { /location/i } keys %$t), 'metadata=keep: location kept');
}

for my $fmt (qw(mp4 mkv m4a)) {
    my $out = "$dir/chap.$fmt";
    convert($chap, $out, "format=$fmt");
    my $c = probe($out, '-show_chapters')->{chapters} // [];
    is(join(',', map { ($_->{tags}{title} // '?') . '@'
                       . sprintf('%.1f', $_->{start_time}) } @$c),
       'One@0.0,Two@1.0', "chapters kept in $fmt");
}

# --- 9. quality for jpg and webp ---------------------------------------
for my $fmt (qw(jpg webp)) {
    my ($lo, $hi) = ("$dir/q10.$fmt", "$dir/q95.$fmt");
    my @d = $fmt eq 'webp' ? ('duration=1') : ();
    convert($vfr, $lo, "format=$fmt", 'quality=10', @d);
    convert($vfr, $hi, "format=$fmt", 'quality=95', @d);
    cmp_ok(-s $hi, '>', 1.5 * (-s $lo), "$fmt: quality=95 bigger than 10");
}

# --- 9. SAR applied: square pixels at the shown shape --------------------
{
    my $ana = "$dir/anamorphic.mp4";
    ff('-f', 'lavfi', '-i', 'testsrc2=size=720x480:rate=25:duration=1',
       '-vf', 'setsar=32/27', '-c:v', 'libx264', $ana);
    for my $fmt (qw(mp4 png)) {
        my $out = "$dir/square.$fmt";
        convert($ana, $out, "format=$fmt");
        my $v = vstream($out);
        my $sar = $v->{sample_aspect_ratio} // '1:1';
        ok(($sar eq '1:1' || $sar eq '0:1')
           && abs($v->{width} / $v->{height} - 16 / 9) < 0.01
           && $v->{width} <= 720,
           "16:9 DVD pixels -> $fmt: $v->{width}x$v->{height} $sar");
    }
}

done_testing();
