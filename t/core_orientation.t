# Phone videos come out upright, checked by the picture: each output
# frame is compared (PSNR) with the ffmpeg CLI's own upright decode of the
# same input frame, for every quarter turn and a mirrored display matrix,
# into video formats, GIF and JPEG.  (Animated WebP is left out: FFmpeg
# 5.1 cannot decode it back.)  A turn the wrong way or a
# missing flip gives a few dB; an upright frame gives 30 dB or more.
use strict;
use warnings;

use File::Temp qw(tempdir);
use Test::More;

use VconvMedia qw(make_media probe video_stream cli ffmpeg);

my $dir = tempdir(CLEANUP => 1);
my $n = 0;

# the picture that upright output must match; well above a wrong turn
my %min_psnr = (mp4 => 30, webm => 30, jpg => 30, gif => 20);


# the average PSNR of two pictures of the same size, from ffmpeg
sub psnr {
    my ($a, $b) = @_;
    my $out = `ffmpeg -nostdin -hide_banner -i '$a' -i '$b' -lavfi psnr \\
               -f null - 2>&1`;
    return $out =~ /average:(inf|[0-9.]+)/ ? ($1 eq 'inf' ? 99 : $1) : -1;
}


# one frame at time $t (undef: the only one) as PNG; $raw: ignore any
# display matrix
sub frame {
    my ($file, $t, $raw, $vf) = @_;
    my $png = "$dir/f" . ++$n . '.png';
    my $opt = $raw ? '-noautorotate' : '';
    $vf = $vf ? "-vf $vf" : '';
    my $ss = defined $t ? "-ss $t" : '';
    ffmpeg("$opt $ss -i '$file' $vf -frames:v 1 $png");
    return $png;
}


# writes a display matrix into the first track header of an MP4/MOV
sub set_matrix {
    my ($file, @m) = @_;
    open my $fh, '+<:raw', $file or die "$file: $!";
    local $/;
    my $data = <$fh>;
    my $at = index($data, 'tkhd');
    die "$file: no tkhd" if $at < 0;
    # version 0 header: the matrix starts 44 bytes after the type
    seek($fh, $at + 44, 0);
    print $fh pack('N9', map { $_ & 0xffffffff } @m);
    close $fh;
}


my $pre = make_media($dir, 'video_only', name => 'pre.mp4');

my %inputs;
for my $r (90, 180, 270) {
    $inputs{"rotate $r"} = "$dir/r$r.mov";
    ffmpeg("-i $pre -c copy -metadata:s:v:0 rotate=$r $dir/r$r.mov");
}

# mirrored: x' = -x + width, which ffmpeg 5.1's CLI does not apply, so its
# reference is made with an explicit hflip of the stored picture
ffmpeg("-i $pre -c copy $dir/mirror.mov");
set_matrix("$dir/mirror.mov", -65536, 0, 0, 0, 65536, 0, 320 << 16, 0,
           1 << 30);
$inputs{mirror} = "$dir/mirror.mov";

my %shown = ('rotate 90' => '240x320', 'rotate 180' => '320x240',
             'rotate 270' => '240x320', mirror => '320x240');

for my $name (sort keys %inputs) {
    my $in = $inputs{$name};
    my $ref = $name eq 'mirror' ? frame($in, 1, 1, 'hflip')
                                : frame($in, 1, 0);

    for my $fmt (qw(mp4 webm gif jpg)) {
        my $out = "$dir/out" . ++$n . ".$fmt";
        my @opt = ("format=$fmt");
        # one picture at 1 s; the clips keep their own rate and size
        push @opt, 'start=1' if $fmt eq 'jpg';
        push @opt, 'fps=25' if $fmt eq 'gif';
        my ($exit, $res, $raw) = cli($in, $out, @opt);
        ok($exit == 0 && $res && $res->{ok}, "$name -> $fmt: converted")
            or do { diag $raw; next };

        my $v = video_stream(probe($out));
        is($v && "$v->{width}x$v->{height}", $shown{$name},
           "$name -> $fmt: shown size");

        # the pixels must be upright by themselves: no matrix is trusted
        my $got = eval { frame($out, $fmt eq 'jpg' ? undef : 1, 1) };
        my $db = $got ? psnr($ref, $got) : -1;
        cmp_ok($db, '>=', $min_psnr{$fmt},
               "$name -> $fmt: same picture as ffmpeg's upright frame");
    }
}

done_testing();
